"""The training loop (with its callbacks) and what only training needs: multi-task sampling,
optimizers, torch.distributed and DVCLive curves. Batching, precision and fault injection, shared
with inference, are in ``mtdnn.runtime``."""
