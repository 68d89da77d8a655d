package database

// DetectPostgres reads the PostgreSQL settings whatever app's driver is.
var DetectPostgres = postgres
