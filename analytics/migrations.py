"""Versioned schema migrations, applied in order by ``Warehouse`` on open.

Each entry is ``(version, name, sql)``; statements are separated by ``;`` at a
line end. Never edit an applied migration: add a new one. Versions are grouped
by the part of the product a table belongs to:
  1-9 core (datasets, events, ingestion), 10-19 scoring, 20-29 segments,
  30-39 predictors, 40-49 campaigns and reports, 50-59 preparation, 60-69 access
  control, 70-79 reviews, 80-89 recommenders, 90-99 marketer settings, 100-109 Spark.
"""

MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "core: datasets, events, ingestions, rejects, settings",
        """
CREATE TABLE settings (
    key VARCHAR PRIMARY KEY,
    value VARCHAR
);
CREATE TABLE datasets (
    name VARCHAR PRIMARY KEY,
    description VARCHAR,
    pseudonymized BOOLEAN DEFAULT false,
    created_at TIMESTAMP DEFAULT current_timestamp,
    updated_at TIMESTAMP DEFAULT current_timestamp
);
CREATE SEQUENCE ingestion_id_seq START 1;
CREATE TABLE ingestions (
    id BIGINT PRIMARY KEY,
    dataset VARCHAR NOT NULL,
    file_name VARCHAR,
    content_hash VARCHAR,
    layout VARCHAR,
    dialect VARCHAR,
    mapping VARCHAR,
    rows_read BIGINT,
    rows_loaded BIGINT,
    rows_rejected BIGINT,
    rows_duplicate BIGINT,
    duration_s DOUBLE,
    created_at TIMESTAMP DEFAULT current_timestamp
);
CREATE TABLE rejects (
    ingestion_id BIGINT NOT NULL,
    line_number BIGINT,
    raw_line VARCHAR,
    reason VARCHAR
);
CREATE TABLE events (
    dataset VARCHAR NOT NULL,
    customer_id VARCHAR NOT NULL,
    event_time TIMESTAMP NOT NULL,
    event_type VARCHAR NOT NULL,
    order_id VARCHAR,
    item_id VARCHAR,
    category VARCHAR,
    quantity DOUBLE,
    revenue DOUBLE,
    rating DOUBLE,
    text VARCHAR,
    country VARCHAR,
    attributes VARCHAR,
    ingestion_id BIGINT,
    row_hash UBIGINT
)
""",
    ),
    (
        2,
        "core: dense integer customer keys per dataset (customer_keys, events.customer_key), backfilled",
        """
CREATE TABLE customer_keys (
    dataset VARCHAR NOT NULL,
    customer_id VARCHAR NOT NULL,
    customer_key INTEGER NOT NULL
);
ALTER TABLE events ADD COLUMN customer_key INTEGER;
INSERT INTO customer_keys (dataset, customer_id, customer_key)
SELECT dataset, customer_id, CAST(row_number() OVER (PARTITION BY dataset ORDER BY customer_id) AS INTEGER)
FROM (SELECT DISTINCT dataset, customer_id FROM events);
UPDATE events SET customer_key = k.customer_key FROM customer_keys k
WHERE events.dataset = k.dataset AND events.customer_id = k.customer_id
""",
    ),
    (
        10,
        "scoring: persisted customer summaries",
        """
CREATE SEQUENCE customer_summary_run_seq START 1;
CREATE TABLE customer_summary_runs (
    run_id BIGINT PRIMARY KEY,
    dataset VARCHAR NOT NULL,
    as_of DATE NOT NULL,
    unit VARCHAR NOT NULL,
    params_hash VARCHAR NOT NULL,
    params VARCHAR,
    data_version VARCHAR NOT NULL,
    n_customers BIGINT,
    created_at TIMESTAMP DEFAULT current_timestamp
);
CREATE TABLE customer_summaries (
    run_id BIGINT NOT NULL,
    customer_id VARCHAR NOT NULL,
    first_purchase TIMESTAMP,
    last_purchase TIMESTAMP,
    frequency DOUBLE,
    recency DOUBLE,
    "T" DOUBLE,
    monetary_value DOUBLE,
    total_revenue DOUBLE,
    return_revenue DOUBLE,
    net_revenue DOUBLE,
    n_orders BIGINT,
    n_views BIGINT,
    n_searches BIGINT,
    n_carts BIGINT,
    n_purchases BIGINT,
    n_returns BIGINT,
    n_reviews BIGINT,
    avg_rating DOUBLE,
    tenure DOUBLE,
    avg_gap DOUBLE,
    first_event TIMESTAMP,
    last_event TIMESTAMP
)
""",
    ),
    (
        11,
        "scoring: per customer and active day aggregates (the summary history), one set per dataset",
        """
CREATE TABLE customer_day_runs (
    dataset VARCHAR PRIMARY KEY,
    data_version VARCHAR NOT NULL,
    n_rows BIGINT NOT NULL,
    created_at TIMESTAMP DEFAULT current_timestamp
);
CREATE TABLE customer_days (
    dataset VARCHAR NOT NULL,
    customer_id VARCHAR NOT NULL,
    day INTEGER NOT NULL,
    n_p INTEGER, rev DOUBLE, n_v INTEGER, n_s INTEGER, n_c INTEGER, n_r INTEGER, n_w INTEGER,
    rrev DOUBLE, srat DOUBLE, n_rat INTEGER, fe BIGINT, le BIGINT
)
""",
    ),
    (
        20,
        "segments: saved segments, clustering runs and cluster assignments",
        """
CREATE SEQUENCE segment_id_seq START 1;
CREATE TABLE segments (
    id BIGINT PRIMARY KEY,
    name VARCHAR NOT NULL UNIQUE,
    description VARCHAR,
    definition VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE SEQUENCE clustering_run_id_seq START 1;
CREATE TABLE clustering_runs (
    id BIGINT PRIMARY KEY,
    dataset VARCHAR NOT NULL,
    as_of DATE NOT NULL,
    features VARCHAR NOT NULL,
    parameters VARCHAR NOT NULL,
    names VARCHAR NOT NULL,
    profiles VARCHAR,
    n_customers BIGINT NOT NULL,
    label VARCHAR,
    created_at TIMESTAMP NOT NULL
);
CREATE TABLE cluster_assignments (
    run_id BIGINT NOT NULL,
    customer_id VARCHAR NOT NULL,
    cluster INTEGER NOT NULL,
    name VARCHAR NOT NULL,
    PRIMARY KEY (run_id, customer_id)
)
""",
    ),
    (
        21,
        "segments: cluster assignments carry their dataset (deleted with it)",
        """
ALTER TABLE cluster_assignments ADD COLUMN dataset VARCHAR;
UPDATE cluster_assignments SET dataset = (
    SELECT r.dataset FROM clustering_runs r WHERE r.id = cluster_assignments.run_id
);
DELETE FROM cluster_assignments WHERE dataset IS NULL
""",
    ),
    (
        30,
        "predictors: backtest runs and their fitted models (files next to the warehouse)",
        """
CREATE SEQUENCE predictor_run_id_seq START 1;
CREATE TABLE predictor_runs (
    id BIGINT PRIMARY KEY,
    dataset VARCHAR NOT NULL,
    calibration_end DATE NOT NULL,
    holdout_end DATE NOT NULL,
    period VARCHAR NOT NULL,
    info VARCHAR NOT NULL,
    label VARCHAR,
    created_at TIMESTAMP NOT NULL
);
CREATE TABLE predictor_models (
    run_id BIGINT NOT NULL,
    dataset VARCHAR NOT NULL,
    model VARCHAR NOT NULL,
    parameters VARCHAR,
    metrics VARCHAR NOT NULL,
    device VARCHAR,
    fit_seconds DOUBLE,
    path VARCHAR,
    error VARCHAR,
    PRIMARY KEY (run_id, model)
)
""",
    ),
    (
        31,
        "predictors: the published predictions per customer (one model's scores per dataset)",
        """
CREATE TABLE customer_predictions (
    dataset VARCHAR NOT NULL,
    customer_id VARCHAR NOT NULL,
    expected_value DOUBLE NOT NULL,
    churn_probability DOUBLE NOT NULL,
    run_id BIGINT NOT NULL,
    model VARCHAR NOT NULL,
    as_of DATE NOT NULL,
    horizon_days INTEGER NOT NULL,
    published_at TIMESTAMP NOT NULL,
    PRIMARY KEY (dataset, customer_id)
)
""",
    ),
    (
        40,
        "campaigns: definitions, the exact target lists with treatment/control, uploaded outcomes",
        """
CREATE SEQUENCE campaign_id_seq START 1;
CREATE TABLE campaigns (
    id BIGINT PRIMARY KEY,
    name VARCHAR NOT NULL UNIQUE,
    dataset VARCHAR NOT NULL,
    as_of DATE NOT NULL,
    description VARCHAR,
    spec VARCHAR NOT NULL,
    summary VARCHAR,
    n_eligible BIGINT,
    n_targets BIGINT NOT NULL,
    n_treatment BIGINT NOT NULL,
    n_control BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE TABLE campaign_targets (
    campaign_id BIGINT NOT NULL,
    dataset VARCHAR NOT NULL,
    customer_id VARCHAR NOT NULL,
    rank BIGINT NOT NULL,
    segment VARCHAR,
    rfm_segment VARCHAR,
    grp VARCHAR NOT NULL,
    expected_clv DOUBLE,
    churn_risk DOUBLE,
    churn_value DOUBLE,
    p_alive DOUBLE,
    rank_score DOUBLE,
    recommended_items VARCHAR
);
CREATE TABLE campaign_outcomes (
    campaign_id BIGINT NOT NULL,
    dataset VARCHAR NOT NULL,
    customer_id VARCHAR NOT NULL,
    converted BOOLEAN NOT NULL,
    revenue DOUBLE NOT NULL,
    revenue_given BOOLEAN NOT NULL,
    uploaded_at TIMESTAMP NOT NULL
)
""",
    ),
    (
        45,
        "reports: stored report snapshots behind hashed permalink tokens",
        """
CREATE SEQUENCE report_id_seq START 1;
CREATE TABLE reports (
    id BIGINT PRIMARY KEY,
    token_hash VARCHAR NOT NULL UNIQUE,
    token_hint VARCHAR,
    kind VARCHAR NOT NULL,
    title VARCHAR NOT NULL,
    subject VARCHAR,
    dataset VARCHAR NOT NULL,
    as_of DATE,
    snapshot VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
)
""",
    ),
    (
        70,
        "reviews: each review's sentiment score and the run that scored them (deleted with the dataset)",
        """
CREATE TABLE review_sentiment (
    dataset VARCHAR NOT NULL,
    customer_id VARCHAR NOT NULL,
    event_time TIMESTAMP NOT NULL,
    item_id VARCHAR,
    category VARCHAR,
    rating DOUBLE,
    text VARCHAR,
    sentiment DOUBLE,
    sentiment_source VARCHAR,
    language VARCHAR
);
CREATE TABLE sentiment_runs (
    dataset VARCHAR PRIMARY KEY,
    data_version VARCHAR NOT NULL,
    source VARCHAR,
    info VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL
)
""",
    ),
    (
        90,
        "marketer settings: per-dataset settings (currency...), deleted with the dataset",
        """
CREATE TABLE dataset_settings (
    dataset VARCHAR NOT NULL,
    key VARCHAR NOT NULL,
    value VARCHAR,
    PRIMARY KEY (dataset, key)
)
""",
    ),
    (
        91,
        "marketer settings: saved segments belong to a dataset (NULL: all datasets); names unique per dataset",
        """
CREATE TABLE segments_scoped (
    id BIGINT PRIMARY KEY,
    name VARCHAR NOT NULL,
    description VARCHAR,
    definition VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    dataset VARCHAR
);
INSERT INTO segments_scoped (id, name, description, definition, created_at, updated_at, dataset)
SELECT id, name, description, definition, created_at, updated_at, NULL FROM segments;
DROP TABLE segments;
ALTER TABLE segments_scoped RENAME TO segments
""",
    ),
    (
        100,
        "spark: customer summaries computed on Spark, attached as datasets without events",
        """
CREATE TABLE attached_summaries (
    dataset VARCHAR PRIMARY KEY,
    as_of DATE NOT NULL,
    source VARCHAR,
    n_customers BIGINT,
    attached_at TIMESTAMP DEFAULT current_timestamp
);
CREATE TABLE attached_customers (
    dataset VARCHAR NOT NULL,
    customer_id VARCHAR NOT NULL,
    first_purchase TIMESTAMP,
    last_purchase TIMESTAMP,
    frequency DOUBLE,
    recency DOUBLE,
    "T" DOUBLE,
    monetary_value DOUBLE,
    total_revenue DOUBLE,
    return_revenue DOUBLE,
    net_revenue DOUBLE,
    n_orders BIGINT,
    n_views BIGINT,
    n_searches BIGINT,
    n_carts BIGINT,
    n_purchases BIGINT,
    n_returns BIGINT,
    n_reviews BIGINT,
    avg_rating DOUBLE,
    tenure DOUBLE,
    avg_gap DOUBLE,
    first_event TIMESTAMP,
    last_event TIMESTAMP
)
""",
    ),
    (
        50,
        "preparation: derived data computed once per data version (analytics.prepare)",
        """
CREATE SEQUENCE prepared_result_id_seq START 1;
CREATE TABLE prepared_results (
    id BIGINT PRIMARY KEY,
    dataset VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    version VARCHAR NOT NULL,
    params_hash VARCHAR NOT NULL,
    params VARCHAR,
    format VARCHAR NOT NULL,
    value VARCHAR,
    attrs VARCHAR,
    n_bytes BIGINT,
    seconds DOUBLE,
    created_at TIMESTAMP NOT NULL
);
CREATE TABLE prepared_chunks (
    result_id BIGINT NOT NULL,
    dataset VARCHAR NOT NULL,
    seq INTEGER NOT NULL,
    data BLOB NOT NULL
)
""",
    ),
    (
        60,
        "access: people and their roles, per-dataset grants, the append-only audit trail",
        """
CREATE TABLE people (
    id VARCHAR PRIMARY KEY,
    name VARCHAR,
    role VARCHAR NOT NULL,
    source VARCHAR,
    added_by VARCHAR,
    added_at TIMESTAMP,
    last_seen TIMESTAMP,
    active BOOLEAN NOT NULL DEFAULT true
);
CREATE TABLE dataset_grants (
    person VARCHAR NOT NULL,
    dataset VARCHAR NOT NULL,
    granted_by VARCHAR,
    granted_at TIMESTAMP,
    PRIMARY KEY (person, dataset)
);
CREATE SEQUENCE audit_id_seq START 1;
CREATE TABLE audit_log (
    id BIGINT PRIMARY KEY,
    happened_at TIMESTAMP NOT NULL,
    actor VARCHAR NOT NULL,
    actor_kind VARCHAR,
    role VARCHAR,
    action VARCHAR NOT NULL,
    dataset_name VARCHAR,
    target VARCHAR,
    n_rows BIGINT,
    detail VARCHAR,
    outcome VARCHAR NOT NULL
)
""",
    ),
    (
        61,
        "access: report links with an expiry, their maker, and whether viewers see raw ids in them",
        """
ALTER TABLE reports ADD COLUMN expires_at TIMESTAMP;
ALTER TABLE reports ADD COLUMN created_by VARCHAR;
ALTER TABLE reports ADD COLUMN raw_ids BOOLEAN DEFAULT false
""",
    ),
    (
        62,
        "access: fitted model files kept inside the (encrypted) warehouse",
        """
CREATE TABLE model_files (
    run_id BIGINT NOT NULL,
    dataset VARCHAR NOT NULL,
    model VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (run_id, model, name)
)
""",
    ),
]
