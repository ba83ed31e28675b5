"""The labelling page: ``page.show(project_dir)`` (Streamlit), ``app.py`` to run it alone,
``cli.label`` for ``ethopose label PROJECT``. Editing logic lives in :mod:`pose.refine.labels`."""
