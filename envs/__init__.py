"""Gymnasium FOREX environments (thin adapters over ``simulator``): registration, wrappers, rewards."""
