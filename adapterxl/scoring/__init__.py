"""Ground floor: scoring of predictions (metrics, the bootstrap) and nearest-neighbour search
over embeddings. Plain functions over numbers and tensors; nothing here reads models, files or
the task catalogue, so every floor above may use it."""
