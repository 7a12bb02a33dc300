"""Grids of runs: grid files (``spec``), one papermill run (``execute``, ``lock``), a whole grid (``runner``) and where runs execute (``executors``)."""
