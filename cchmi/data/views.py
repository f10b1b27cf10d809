"""Adding a view to a MultiView: any row-aligned array (:func:`with_view`), or the degraded copy of a
whole image (:func:`cchmi.data.multiview.degraded_view`: blur and noise, in the spirit of MNIST ->
MNIST-M, the same content under a shifted appearance); and a label-irrelevant nuisance shared by the
views (:func:`add_nuisance`)."""

from __future__ import annotations

import dataclasses
import math
import zlib

import numpy as np

from cchmi import _validate as V
from cchmi.data.multiview import DEGRADED_NOISE, DEGRADED_SIGMA, MultiView, degraded_view

NUISANCE_DIMS = 8  # columns the nuisance appends to each view
NUISANCE_SEED = 0  # the data seed of the nuisance: the same draw for every run (see add_nuisance)


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


def add_nuisance(data: MultiView, strength: float, dims: int = NUISANCE_DIMS, views=None,
                 random_state: int = NUISANCE_SEED) -> MultiView:
    """`data` with a shared, label-irrelevant nuisance appended to each of `views` (None: every view
    that is not an image): `dims` columns per view, the same latent for every view.

    One latent z_i ~ N(0, I_dims) per row, drawn independently of everything (labels and views).
    View v gets the columns u_v = (strength * z A_v + e_v) / sqrt(1 + strength^2), A_v a random
    dims x dims rotation and e_v ~ N(0, I_dims) of its own: unit-variance columns whose matched
    directions of two views correlate with rho = strength^2 / (1 + strength^2). As (u_T, u_S) is
    independent of (X_T, X_S, Y), the appended views have I(T;S) raised by exactly
    -dims/2 log(1 - rho^2) nats (1.15 nats at strength 1, 4.09 at 2, with 8 dims; I(T;S|Y) the same),
    while I(X_v, u_v; Y) = I(X_v; Y): no label information, and the original columns untouched.
    strength 0 returns `data` itself (no columns: bit-identical).

    The draws are fixed by `random_state` (a data seed, not a run's seed): z from
    default_rng([random_state, 0]), A_v and e_v from default_rng([random_state, 1, crc32(v)]), so
    every seed of a sweep sees the same nuisance (runs pair across seeds as on any fixed dataset),
    a view's columns do not depend on which other views are loaded, and the levels of a strength
    sweep share z, A_v and e_v (only the strength differs). Columns take the view's float dtype
    (float64 for an integer view). ``extra["nuisance"]`` records strength, dims, seed and views.
    An image view (one with an image shape) is refused by name: columns would break its (C, H, W).
    """
    strength = V.as_real(strength, "nuisance", 0, reason=" (the nuisance's strength)")
    dims = V.as_int(dims, "nuisance_dims", 1)
    random_state = V.as_int(random_state, "random_state", 0)
    names = [v for v in data.views if v not in data.image_shapes] if views is None else list(views)
    for name in names:
        data.view(name)  # an unknown name is refused, naming the views
        if name in data.image_shapes:
            raise ValueError(f"view {name!r} of {data.name} is an image {data.image_shapes[name]}: the nuisance "
                             "appends columns to views that are not images")
    if strength == 0.0:
        return data
    z = np.random.default_rng([random_state, 0]).standard_normal((data.n, dims))
    scale = 1.0 / math.sqrt(1.0 + strength**2)
    out = dict(data.views)
    for name in names:
        rng = np.random.default_rng([random_state, 1, zlib.crc32(name.encode())])
        rotation, _ = np.linalg.qr(rng.standard_normal((dims, dims)))
        columns = scale * (strength * (z @ rotation) + rng.standard_normal((data.n, dims)))
        x = data.views[name]
        dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64
        out[name] = np.concatenate([x.astype(dtype, copy=False), columns.astype(dtype)], axis=1)
    rho = strength**2 / (1.0 + strength**2)
    record = {"strength": strength, "dims": dims, "seed": random_state, "views": names,
              "added_i_ts_nats": -0.5 * dims * math.log1p(-rho**2)}
    return dataclasses.replace(data, views=out, extra={**data.extra, "nuisance": record},
                               description=f"{data.description}; a shared label-irrelevant nuisance (strength "
                                           f"{strength:g}, {dims} columns) appended to {', '.join(names)}")
