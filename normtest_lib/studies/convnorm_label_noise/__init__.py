"""Study 3, ConvNorm under label noise: does the preconditioned convolution lose less accuracy than batch norm?

``params/convnorm_label_noise.yml``, ``notebooks/convnorm_label_noise.ipynb``, ``results/convnorm_label_noise/``.
Modules: ``analysis`` (the variants, noise levels, stability, accuracy lost to noise), ``figures`` (accuracy
against noise, memorization), ``errata`` (the course paper's ConvNorm port and label noise, and a correction
of this book), ``answer`` (the study's answer).
"""
