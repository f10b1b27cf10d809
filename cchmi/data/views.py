"""Views made from other views: a degraded copy of a whole image (blur and noise), in the spirit of
MNIST -> MNIST-M (the same content under a shifted appearance), and adding a view to a MultiView."""

from __future__ import annotations

import dataclasses

import numpy as np

from cchmi import _validate as V
from cchmi.data.multiview import DEGRADED_NOISE, DEGRADED_SIGMA, MultiView, gaussian_blur


def degraded_view(images, sigma: float = DEGRADED_SIGMA, noise: float = DEGRADED_NOISE,
                  random_state=0) -> np.ndarray:
    """The whole-image degraded view of a (n, H, W) stack: each image blurred by
    :func:`cchmi.data.multiview.gaussian_blur` (a Gaussian of s.d. `sigma` pixels, edges mirrored,
    its own pixels only), then independent N(0, noise^2) noise added to every pixel (float32, drawn
    from `random_state`; not clipped). Values keep the input's scale: pass Fashion-MNIST as
    images / 255 so that `noise` is on the [0, 1] scale. Returns (n, H, W) float32."""
    sigma = V.as_real(sigma, "sigma", 0, reason=" (a Gaussian s.d. in pixels)")
    noise = V.as_real(noise, "noise", 0, reason=" (a noise s.d. on the images' scale)")
    images = np.asarray(images)
    if images.ndim != 3 or min(images.shape) < 1:
        raise ValueError(f"images must be a non-empty (n, H, W) stack, got shape {images.shape}")
    out = gaussian_blur(images, sigma)
    if noise:
        out += np.float32(noise) * V.as_rng(random_state).standard_normal(out.shape, dtype=np.float32)
    return out


def with_view(data: MultiView, name: str, values, image_shape=None) -> MultiView:
    """A copy of `data` with one more view `name`: `values` (n, ...) row-aligned with data's samples,
    flattened to (n, d); `image_shape` (C, H, W) records it as an image. The other views are shared,
    not copied. A name `data` already has is refused."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    if name in data.views:
        raise ValueError(f"{data.name} already has a view {name!r}; its views are {', '.join(data.views)}")
    values = np.asarray(values)
    if values.ndim < 2 or values.shape[0] != data.n:
        raise ValueError(f"values must be (n, ...) with n={data.n} rows (one per sample of {data.name}), "
                         f"got shape {values.shape}")
    flat = values.reshape(data.n, -1)
    shapes = dict(data.image_shapes)
    if image_shape is not None:
        image_shape = tuple(int(s) for s in image_shape)
        if len(image_shape) != 3 or int(np.prod(image_shape)) != flat.shape[1]:
            raise ValueError(f"image_shape must be (C, H, W) with C*H*W = {flat.shape[1]}, got {image_shape}")
        shapes[name] = image_shape
    return dataclasses.replace(data, views={**data.views, name: flat}, image_shapes=shapes)


def add_degraded_view(data: MultiView, images, name: str = "degraded", sigma: float = DEGRADED_SIGMA,
                      noise: float = DEGRADED_NOISE, random_state=0) -> MultiView:
    """`data` with the :func:`degraded_view` of `images` ((n, H, W), row i the image of data's sample
    i, on the scale `noise` refers to) added as view `name` (an image view of shape (1, H, W)); the
    blur and noise are recorded in ``extra[name]``."""
    view = degraded_view(images, sigma, noise, random_state)
    out = with_view(data, name, view, image_shape=(1, *view.shape[1:]))
    return dataclasses.replace(out, extra={**data.extra, name: {"sigma": sigma, "noise": noise}})
