"""The models users hold: A2C and A3C (learn, predict, save, load), and algorithms by name."""
