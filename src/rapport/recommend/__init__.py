"""Recommendations: training, candidate models, context re-ranking, merchandising rules, serving."""
