"""Dashboard layer: the Streamlit app (labelling, QC, ethograms, cohort results)."""
