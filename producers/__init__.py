"""Market data in: Databento live, historical and file replay into md.* topics."""
