"""Channel statistics (``channel``), statistics after an input setting (``normalized``) and published values (``reference``)."""
