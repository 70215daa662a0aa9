"""What several test packages share: ports, waiting, servers in threads or processes."""
