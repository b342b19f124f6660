"""Reviews: sentiment learned from the dataset's own rated reviews (:mod:`.sentiment`) and the
per-customer and per-item sentiment built on it (:mod:`.features`)."""
