"""``import wandb`` under ``labmate run --wandb``: labmate's stand-in
(``labmate.wandb``), under wandb's own module names."""

import labmate.wandb as _standin

_standin._alias_as(__name__)
