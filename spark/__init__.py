"""fhir2omop on Apache Spark: the same converters on executors, a Parquet CDM folder as output.

Optional (`pip install "ctcl-map[spark]"`): pyspark is imported only inside this package's
functions, never when the CLI starts. engine.py is the job, executor.py what executors run
(pure Python), session.py starting Spark, submit.py the spark-submit entry."""
