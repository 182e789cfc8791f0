"""MT-DNN reproducibility pipeline."""
