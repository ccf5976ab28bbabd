"""The demo project that shows metricdemo off."""
