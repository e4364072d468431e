#!/usr/bin/python
#
# Transcription of Altair's documented example client `nc_info.py` ("Advanced REST
# Usage", Altair Accelerator REST API v3 docs; seed document 000_fe5b8af0d64a33fc), kept
# for comparison with ncinfo_async: its output is the reference the client must match
# byte for byte. Changes from the documented code, only so it runs non-interactively
# and can be imported: the password comes from the NC_PASSWORD environment variable
# instead of getpass, `getToken` is found next to this file, and the main body runs
# under `if __name__ == "__main__":`. Everything else (verify=True, the %-16s prints,
# the " Host"/" Duration" labels with one leading space) is as documented.
# ruff: noqa
# fmt: off
#
# nc_info.py
#
# Usage
#
# export NC_URL=<URL FOR NC QUEUE>
# ./nc_info.py JOB_ID [JOB_ID ...]
#
import os, sys, json, requests
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from getToken import getJWT

def getMyPassword():
    return os.environ['NC_PASSWORD']

def infoPrint( text ):
    dd = json.loads(text)
    id = find(dd, 'ID')
    user = find(dd, 'USER')
    group = find(dd, 'GROUP')
    print ("%-16s%s" % ("Job", id) )
    print ("%-16s%s,%s" % ("User,Group", user, group))
    print ("%-16s%s" % ("Command", find(dd, 'COMMAND')))
    print ("%-16s%s" % ("Status", find(dd, 'STATUSNC')))
    print ("%-16s%s" % (" Host", find(dd, 'HOST')))
    print ("%-16s%s" % (" Duration", find(dd, 'DURATIONPP')))

def find(jobdump, key):
    for c in range (0, len(jobdump['columns'])):
        if (jobdump['columns'][c]['field'] == key):
            break
    return jobdump['rows'][0][c]

#
# Main body
#
if __name__ == "__main__":
    nc_url = os.environ['NC_URL']
    scheme = nc_url.split(":")[0]
    hostport = nc_url.split("/")[2]
    url = "{0}://{1}".format(scheme, hostport)

    ss = requests.Session() # use keep-alive
    jwt = getJWT(ss, url, os.environ["USER"], getMyPassword())

    for arg in range (1,len(sys.argv)):
        jobid = sys.argv[arg]
        query = url + '/api/v3/jobs/' + jobid
        r = ss.get(query, headers={"Authorization": jwt},
            verify=True)
        infoPrint(r.text)
        print ("")
