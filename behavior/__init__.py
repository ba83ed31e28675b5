"""Behaviour layer: rule-based states, classifiers, unsupervised discovery, agreement."""
