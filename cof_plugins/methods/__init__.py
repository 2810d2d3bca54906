"""Methods other than Adaptive-CoF built on the same plugin layer, end to end.

Each sub-package ties a method's protocol, data, rewards and recipes together and runs it
on the tiny CPU default (``sifthinker``: SIFThinker's areas-with-depth reasoning, SFT then
single-turn GRPO; ``chain_of_spot`` with ``cos_eval``, ``cos_report`` and ``cos_attention``:
Chain-of-Spot's ROI-then-answer turns, SFT only).
"""
