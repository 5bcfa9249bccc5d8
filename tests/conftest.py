"""Shared test set-up: one torch thread, as the notebooks use."""

import torch

torch.set_num_threads(1)
