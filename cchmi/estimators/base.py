"""scikit-learn-shaped classes around the estimator functions.

``__init__`` stores the parameters (the estimator function's options, with the same defaults),
``fit`` returns self and puts the results in trailing-underscore attributes (``result_``, an
:class:`~cchmi.results.MIResult`, and ``mi_`` or ``entropy_``). ``get_params`` / ``set_params``
follow scikit-learn's conventions, so the classes clone and grid-search like its estimators.
"""

from __future__ import annotations

import inspect

from cchmi.estimators.options import option_parameters


class KnnEstimator:
    """Base class: subclasses set ``_function`` (the estimator function) and ``_fields`` (its
    options); ``__init__``'s signature is built from them."""

    _function = None
    _fields: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        params = option_parameters(cls._fields)

        def __init__(self, *args, **kwargs):
            bound = __init__.__signature__.bind(self, *args, **kwargs)
            bound.apply_defaults()
            for name, value in list(bound.arguments.items())[1:]:
                setattr(self, name, value)

        __init__.__signature__ = inspect.Signature(
            [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)] + params)
        __init__.__qualname__ = f"{cls.__name__}.__init__"
        __init__.__doc__ = f"Stores the options of :func:`cchmi.{cls._function.__name__}`."
        cls.__init__ = __init__

    def get_params(self, deep: bool = True) -> dict:
        return {name: getattr(self, name) for name in self._fields}

    def set_params(self, **params):
        for name, value in params.items():
            if name not in self._fields:
                raise ValueError(f"{type(self).__name__} has no parameter {name!r}; valid: {', '.join(self._fields)}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def _estimate(self, *arrays):
        self.result_ = type(self)._function(*arrays, **self.get_params())
        return self.result_.estimate
