"""The data chapter, dataset statistics: each data set's channel statistics and what each input setting does to them.

``notebooks/dataset_statistics.ipynb``, ``results/dataset_statistics/`` (the committed statistics records of
``normtest stats``). Not a study with a grid: it trains nothing, so it has no runs, errata or answer; its
only module is ``figures`` (the gallery of settings and the pixel histograms). Its tables
(:mod:`normtest_lib.report.stats_tables`) stay shared: study 1's chapter and errata print Table 1 too.
"""
