"""Software-defined assets, one module per stage; each asset orchestrates domain functions."""
