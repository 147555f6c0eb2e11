"""The engine: what each task needs (:mod:`~zoo.engine.tasks`), training (:mod:`~zoo.engine.train`),
evaluation (:mod:`~zoo.engine.evaluate`) and prediction pictures (:mod:`~zoo.engine.predict`), on top
of :mod:`zoo.models`, :mod:`zoo.data` and :mod:`zoo.hub`."""
