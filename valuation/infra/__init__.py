"""What the service runs on: its settings (read lazily from the environment) and the Dask cluster
for exports beyond one machine."""
