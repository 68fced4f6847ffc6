"""Administration services (no argparse): campaign types, instances, dates, targets."""
