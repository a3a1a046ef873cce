module github.com/hookline/hookline/services/worker

go 1.26
