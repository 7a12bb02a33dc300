"""Study 2, normalization layers in a CIFAR ResNet: batch, instance, batch-instance, layer and group norm.

``params/normalization_layers.yml``, ``notebooks/normalization_layers.ipynb``, ``results/normalization_layers/``.
Modules: ``analysis`` (layer order, main batch size, the metrics table), ``figures`` (probes over training,
layer statistics, batch size), ``errata`` (the earlier work's defects, with evidence), ``answer`` (the study's answer).
"""
