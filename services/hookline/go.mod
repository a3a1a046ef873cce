module github.com/hookline/hookline/services/hookline

go 1.26
