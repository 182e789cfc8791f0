"""The training loop and what it runs on: batching, multi-task sampling, optimizers, precision, torch.distributed, fault injection."""
