"""LIME (Guo et al., 2017): low-light enhancement by illumination map estimation.

Illumination T0 = max over RGB; refined by the structure-aware smoothing of the paper's sped-up
solver (one sparse linear system with weights from the initial map's gradients); output
I / T^gamma. A classical baseline that needs no training.
"""

from __future__ import annotations

import numpy as np

from edgeenhance.models.classical import ClassicalEnhancer

MAX_SOLVE_PIXELS = 512 * 512  # larger photos solve T at a reduced size, then upsample it


class Lime(ClassicalEnhancer):
    family = "lime"
    name = "lime"
    fixes = "low-light photos (classical LIME baseline, no training)"
    exposure_task = "under"

    def __init__(self, alpha: float = 0.15, gamma: float = 0.8, sigma: float = 2.0, eps: float = 1e-3):
        self.alpha, self.gamma, self.sigma, self.eps = alpha, gamma, sigma, eps
        self.config = dict(alpha=alpha, gamma=gamma, sigma=sigma)

    def illumination(self, img: np.ndarray) -> np.ndarray:
        import cv2
        from scipy.ndimage import gaussian_filter
        from scipy.sparse import diags
        from scipy.sparse.linalg import spsolve

        h, w = img.shape[:2]
        t0_full = img.max(axis=2).astype(np.float64)
        scale = min(1.0, (MAX_SOLVE_PIXELS / (h * w)) ** 0.5)
        t0 = t0_full if scale == 1.0 else cv2.resize(t0_full, (max(2, round(w * scale)), max(2, round(h * scale))),
                                                   interpolation=cv2.INTER_AREA)
        sh, sw = t0.shape
        dx = np.diff(t0, axis=1, append=t0[:, -1:])
        dy = np.diff(t0, axis=0, append=t0[-1:, :])
        # Strategy III weights: Gaussian-smoothed inverse gradient magnitude.
        wx = gaussian_filter(np.ones_like(t0), self.sigma) / (np.abs(gaussian_filter(dx, self.sigma)) + self.eps)
        wy = gaussian_filter(np.ones_like(t0), self.sigma) / (np.abs(gaussian_filter(dy, self.sigma)) + self.eps)
        wx[:, -1] = 0
        wy[-1, :] = 0
        n = sh * sw
        wxf, wyf = wx.ravel(), wy.ravel()
        # (I + alpha * sum_d D_d^T W_d D_d) t = t0 as a 5-point sparse system.
        left = np.roll(wxf, 1)
        up = np.roll(wyf, sw)
        diag = 1 + self.alpha * (wxf + left + wyf + up)
        a = diags([diag, -self.alpha * wxf[:-1], -self.alpha * wxf[:-1], -self.alpha * wyf[:-sw], -self.alpha * wyf[:-sw]],
                  [0, 1, -1, sw, -sw], shape=(n, n), format="csc")
        t = spsolve(a, t0.ravel()).reshape(sh, sw)
        if scale != 1.0:
            t = cv2.resize(t, (w, h), interpolation=cv2.INTER_LINEAR)
        return np.clip(t, self.eps, 1).astype(np.float32)

    def enhance(self, img: np.ndarray) -> np.ndarray:
        """(H, W, 3) float in [0, 1] -> enhanced (H, W, 3)."""
        t = self.illumination(img) ** self.gamma
        return np.clip(img / t[..., None], 0, 1).astype(np.float32)
