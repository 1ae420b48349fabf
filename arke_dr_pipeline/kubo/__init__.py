"""The Kubo node: RPC client, local daemon management, docker-exec transport."""
