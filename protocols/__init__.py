"""Protocols layer: assay definitions, batch phenotyping over cohorts, statistics, reports."""
