"""What the report notebooks compute, say, tabulate and draw: the scaling report (``report``,
``summary``), tables and figures (``tables``, ``plots``), the joint N x D report (``joint_report``,
``joint_plots``) and the index of reports (``index``). May import every stage up to ``analysis``."""
