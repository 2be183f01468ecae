"""``make bench`` (``python -m lib.bench``): a training step's throughput, MFU and where its time
goes (``step``), the stages around training (``stages``), the command line and its table
(``cli``), and this checkout's trial loop against an earlier commit's (``sidebyside``). May import
every other stage."""
