"""SIFThinker (spatially-aware image focus: boxes with depth interleaved with reasoning).

The pieces live where their kind lives: the protocol and parser in ``core.sif``, depth maps
in ``core.depth``, scenes in ``testbed.depth_scenes``, data in ``data.sif*``, rewards in
``rewards.sif`` (zoo entry ``sifthinker``), recipes ``sft/sifthinker_*`` and
``rl/sifthinker_*``. This package evaluates, reports and runs the whole method:
``run_sifthinker_quickstart(out)``.
"""

from cof_plugins.methods.sifthinker.quickstart import QuickstartConfig, run_sifthinker_quickstart

__all__ = ["QuickstartConfig", "run_sifthinker_quickstart"]
