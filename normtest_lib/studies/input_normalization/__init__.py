"""Study 1, input normalization when fine-tuning: whose statistics should standardize the inputs?

``params/input_normalization.yml``, ``notebooks/input_normalization.ipynb``, ``results/input_normalization/``.
Modules: ``analysis`` (setting labels, the pretraining run, the earlier work's table layouts),
``figures`` (accuracy against data size), ``errata`` (the earlier work's defects, with evidence),
``answer`` (the study's answer).
"""
