"""The Spark engine: the per-customer definitions of the warehouse on Apache Spark.

For event data that outgrows one machine (Parquet on a cluster), the same customer
summary, RFM / behaviour scores and segments, formula CLV, BG/NBD + Gamma-Gamma
(and Pareto/NBD) probabilistic CLV, predictor features and LightGBM scores as the
warehouse computes, equal to its results (tests in ``tests/spark``).

* :mod:`analytics.spark.session` - starting Spark (local, a master URL, Spark Connect);
* :mod:`analytics.spark.events` - reading and checking the input events;
* :mod:`analytics.spark.summary` - the customer summary (DataFrame API);
* :mod:`analytics.spark.scoring` - scores, segments and model fits at scale;
* :mod:`analytics.spark.features` - per-period sequences, predictor features, LightGBM;
* :mod:`analytics.spark.attach` - a Spark-computed summary as a dataset the app opens.

pyspark is an optional dependency (``pip install -e ".[spark]"``) and needs Java 17+;
nothing here is imported by the rest of the library unless ``--engine spark`` is used.
"""
