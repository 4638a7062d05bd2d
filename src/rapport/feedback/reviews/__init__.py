"""Product reviews: submission with screening, reviews imported from history, moderation and
the verified-review announcement, published reviews and rating summaries."""
