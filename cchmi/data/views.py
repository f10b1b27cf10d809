"""Adding a view to a MultiView: any row-aligned array (:func:`with_view`), or the degraded copy of a
whole image (:func:`cchmi.data.multiview.degraded_view`: blur and noise, in the spirit of MNIST ->
MNIST-M, the same content under a shifted appearance)."""

from __future__ import annotations

import dataclasses

import numpy as np

from cchmi.data.multiview import DEGRADED_NOISE, DEGRADED_SIGMA, MultiView, degraded_view


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
