"""Independent NumPy implementations of TensorFlow 1.x's documented optimizer updates.

Written from the formulas in TensorFlow's training_ops documentation, one state dict per
variable, in the variable's dtype; ``t`` is the 1-based step number.
"""

from __future__ import annotations

import numpy as np


class Reference:
    def __init__(self, dtype, **hyper):
        self.dtype = np.dtype(dtype)
        self.h = {k: self.dtype.type(v) for k, v in hyper.items()}

    def slots(self, var) -> dict:
        return {}

    def update(self, var, grad, s, t):
        raise NotImplementedError


class SGD(Reference):
    def update(self, var, grad, s, t):
        return var - self.h["lr"] * grad


class Momentum(Reference):
    def __init__(self, dtype, nesterov=False, **hyper):
        super().__init__(dtype, **hyper)
        self.nesterov = nesterov

    def slots(self, var):
        return {"momentum": np.zeros_like(var)}

    def update(self, var, grad, s, t):
        lr, mu = self.h["lr"], self.h["momentum"]
        s["momentum"] = mu * s["momentum"] + grad
        if self.nesterov:
            return var - (lr * grad + lr * mu * s["momentum"])
        return var - lr * s["momentum"]


class Adagrad(Reference):
    def slots(self, var):
        return {"accumulator": np.full_like(var, self.h["init"])}

    def update(self, var, grad, s, t):
        s["accumulator"] = s["accumulator"] + grad * grad
        return var - self.h["lr"] * grad / np.sqrt(s["accumulator"])


class AdagradDA(Reference):
    """t here is the number of the step being taken (global_step + 1)."""

    def slots(self, var):
        return {"gradient_accumulator": np.zeros_like(var),
                "gradient_squared_accumulator": np.full_like(var, self.h["init"])}

    def update(self, var, grad, s, t):
        lr, l1, l2 = self.h["lr"], self.h["l1"], self.h["l2"]
        s["gradient_accumulator"] = g = s["gradient_accumulator"] + grad
        s["gradient_squared_accumulator"] = gg = s["gradient_squared_accumulator"] + grad ** 2
        step = self.dtype.type(t)
        if l1 > 0:
            g = np.sign(g) * np.maximum(np.abs(g) - l1 * step, 0)
        return -lr * g / (l2 * step * lr + np.sqrt(gg))


class Adadelta(Reference):
    def slots(self, var):
        return {"accum": np.zeros_like(var), "accum_update": np.zeros_like(var)}

    def update(self, var, grad, s, t):
        lr, rho, eps = self.h["lr"], self.h["rho"], self.h["epsilon"]
        one = self.dtype.type(1)
        s["accum"] = rho * s["accum"] + (one - rho) * grad ** 2
        update = np.sqrt(s["accum_update"] + eps) / np.sqrt(s["accum"] + eps) * grad
        s["accum_update"] = rho * s["accum_update"] + (one - rho) * update ** 2
        return var - lr * update


class Adam(Reference):
    def slots(self, var):
        return {"m": np.zeros_like(var), "v": np.zeros_like(var)}

    def update(self, var, grad, s, t):
        lr, b1, b2, eps = self.h["lr"], self.h["beta1"], self.h["beta2"], self.h["epsilon"]
        one = self.dtype.type(1)
        lr_t = lr * np.sqrt(one - b2 ** t) / (one - b1 ** t)
        s["m"] = b1 * s["m"] + (one - b1) * grad
        s["v"] = b2 * s["v"] + (one - b2) * grad * grad
        return var - lr_t * s["m"] / (np.sqrt(s["v"]) + eps)


class RMSProp(Reference):
    def __init__(self, dtype, centered=False, **hyper):
        super().__init__(dtype, **hyper)
        self.centered = centered

    def slots(self, var):
        return {"rms": np.ones_like(var), "momentum": np.zeros_like(var),
                "mg": np.zeros_like(var)}

    def update(self, var, grad, s, t):
        lr, rho, mu, eps = self.h["lr"], self.h["decay"], self.h["momentum"], self.h["epsilon"]
        one = self.dtype.type(1)
        s["rms"] = rho * s["rms"] + (one - rho) * grad * grad
        denominator = s["rms"] + eps
        if self.centered:
            s["mg"] = rho * s["mg"] + (one - rho) * grad
            denominator = s["rms"] - s["mg"] ** 2 + eps
        s["momentum"] = mu * s["momentum"] + lr * grad / np.sqrt(denominator)
        return var - s["momentum"]


class Ftrl(Reference):
    def slots(self, var):
        return {"accum": np.full_like(var, self.h["init"]), "linear": np.zeros_like(var)}

    def update(self, var, grad, s, t):
        h = self.h
        p = -h["lr_power"]
        shrinkage = h.get("l2_shrinkage", self.dtype.type(0))
        accum_new = s["accum"] + grad * grad
        g = grad + 2 * shrinkage * var
        s["linear"] = s["linear"] + g - (accum_new ** p - s["accum"] ** p) / h["lr"] * var
        quadratic = accum_new ** p / h["lr"] + 2 * h["l2"]
        s["accum"] = accum_new
        linear = s["linear"]
        return np.where(np.abs(linear) > h["l1"],
                        (np.sign(linear) * h["l1"] - linear) / quadratic, 0).astype(self.dtype)
