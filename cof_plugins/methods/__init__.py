"""Methods other than Adaptive-CoF built on the same plugin layer, end to end.

Each sub-package ties a method's protocol, data, rewards and recipes together and runs it
on the tiny CPU default (``sifthinker``: SIFThinker's areas-with-depth reasoning, SFT then
single-turn GRPO).
"""
