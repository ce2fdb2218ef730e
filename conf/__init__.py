"""Hydra configuration groups of hwnas (a package so the installed app can find them)."""
