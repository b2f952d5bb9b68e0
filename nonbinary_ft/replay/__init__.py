"""The replay benchmark: search strategies replayed in simulated time on recorded learning
curves (the tables of :mod:`nonbinary_ft.history.table`).

- :mod:`.collect`: ``nbft bench collect``, training a grid on Ray with every epoch recorded;
- :mod:`.simulate`: the discrete-event replay that drives the sweep's own search objects;
- :mod:`.strategies`: the strategies compared; :mod:`.metrics`: what is measured of them;
- :mod:`.benchmark`: running them over tables, seeds and worker counts.
"""
