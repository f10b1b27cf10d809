"""scikit-learn-shaped classes around the estimator functions.

``__init__`` stores the parameters (the estimator function's options, with the same defaults),
``fit`` returns self and puts the results in trailing-underscore attributes (``result_``, an
:class:`~cchmi.results.MIResult`, and ``mi_`` or ``entropy_``). ``get_params`` / ``set_params``
follow scikit-learn's conventions (:class:`ParamsMixin`, shared with :class:`cchmi.NeuralMI`), so
the classes clone and grid-search like its estimators.
"""

from __future__ import annotations

import inspect

from cchmi.estimators.options import option_parameters


class ParamsMixin:
    """scikit-learn's parameter conventions without needing scikit-learn: the parameters are the
    arguments of ``__init__`` (stored as attributes of the same name), ``get_params`` /
    ``set_params`` read and write them, so ``sklearn.base.clone`` and grid searches work, and
    ``__sklearn_tags__`` describes the estimator to scikit-learn when it is installed."""

    @classmethod
    def _get_param_names(cls) -> list[str]:
        return [name for name in inspect.signature(cls.__init__).parameters if name != "self"]

    def get_params(self, deep: bool = True) -> dict:
        """The parameters, by name (`deep` is accepted for scikit-learn: no parameter is an estimator)."""
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params):
        names = self._get_param_names()
        for name, value in params.items():
            if name not in names:
                raise ValueError(f"{type(self).__name__} has no parameter {name!r}; valid: {', '.join(names)}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def __sklearn_tags__(self):
        """Neither a predictor nor a transformer: ``fit`` estimates a quantity of the data, needs a
        second array when its signature does (``fit(x, y)``), and takes dense 2-D arrays without NaN."""
        from sklearn.utils import Tags, TargetTags

        fit = list(inspect.signature(type(self).fit).parameters.values())[1:]
        needs_y = len(fit) > 1 and fit[1].default is inspect.Parameter.empty
        return Tags(estimator_type=None, target_tags=TargetTags(required=needs_y))


class KnnEstimator(ParamsMixin):
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

    def _estimate(self, *arrays):
        self.result_ = type(self)._function(*arrays, **self.get_params())
        return self.result_.estimate
