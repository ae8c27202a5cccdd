"""Mobilise: email mobilisation and donor journey engine."""
