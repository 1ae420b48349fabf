"""What produces archives to test on: the test-data generator and a stand-in
for the Arke API's writes. Kept out of `dr/`, which holds the operations."""
