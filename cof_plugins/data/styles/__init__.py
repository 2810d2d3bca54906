"""Other projects' trajectory formats, one module per style (``cof data convert --style``).

- ``function-call``: LLaMA-Factory sharegpt with ``function_call``/``observation`` turns
  (``function_call``);
- ``deepeyes``: OpenAI-style messages, crops returned by ``tool`` turns, absolute boxes
  (``deepeyes``);
- ``mini-o3``: relative boxes, crops of earlier crops (``mini_o3``);
- ``canonical``: rows already canonical; only ``--coords-from/--coords-to`` rewriting applies.

Observation turns that return images become the protocol's crop turn (``<image>`` + suffix),
so converted data shows the model the same text as RL and eval; a row without a system turn
gets the protocol's system prompt. A reader leaves boxes as the source wrote them; the
runner (``data.convert``) rewrites them from the style's convention to the family's.
"""

STYLES = ("function-call", "deepeyes", "mini-o3", "canonical")
STYLE_COORDS = {"deepeyes": "abs", "mini-o3": "rel1"}
