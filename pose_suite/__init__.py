"""Internals shared by the suite's four scripts.

The scripts at the project's root are the entry points users know
(``detection_service.py``, ``pose_extraction_service.py``,
``pose_analysis_service.py``, ``creating_config.py``); this package holds what
they share: error types, configuration schema, checkpoint safety, weight
download, input reading and result writing.
"""
