-- An account whose password was chosen by the machine (the first admin's, printed once)
-- must change it at its first login.
ALTER TABLE credentials ADD COLUMN must_change_password INTEGER NOT NULL DEFAULT 0;
