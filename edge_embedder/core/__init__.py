"""The core every task shares: model bytes -> backend -> checked spec; options; running modes.

Nothing here knows a task. Modules: :mod:`.backends` (the runtime protocol,
LiteRT and ONNX Runtime), :mod:`.contract` (one check per rule),
:mod:`.recipe` (preprocessing as data), :mod:`.base_options`,
:mod:`.running_mode`, :mod:`.live_stream`, :mod:`.timing` and :mod:`.task`
(the base class of every task).
"""
